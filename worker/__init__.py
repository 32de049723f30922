"""The Celery worker: thin tasks, Algorithm 1, ONNX export."""
