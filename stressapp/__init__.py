"""The web-stress test application: controllable, ramped CPU, memory and network load."""
