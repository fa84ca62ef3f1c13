"""The ML-lifecycle platform CDK app: ``mlops.stacks`` compose, ``mlops.constructs`` build."""
