"""Files landing in object storage (S3 and compatibles), loaded exactly once per object."""
