"""The EventPipeline operator."""
