"""Rule unit tests: `swarmguard-controller test-rules FILE...` (docs/rules.md, "Testing rules").

notation.py parses the series notation, spec.py reads a test file, replay.py replays its series
through the controller's cache and rule engine on a fake clock, explain.py says why a rule did not
fire, check.py compares and reports, command.py is the command.
"""
