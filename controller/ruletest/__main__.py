"""`python -m controller.ruletest FILE...`: the same as `swarmguard-controller test-rules FILE...`."""
import sys

from controller.ruletest.command import main

sys.exit(main())
