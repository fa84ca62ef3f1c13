"""The training-to-deployment workflow (``pipeline.TrainingPipeline``) and its phases."""
