"""Sources: each describes its objects' columns and reads them as bounded Arrow batches."""
