"""Local stand-ins for external services (an S3-compatible server, a Salesforce org) that the
demo, the benchmarks and the tests start: part of the package, so the product never imports
the test suite."""
