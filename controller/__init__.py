"""The SwarmGuard controller: rules over recent metrics, and zero-downtime recovery actions."""
