"""`notify bench`: the benchmarks of DESIGN §10, each printed beside a bare reference measured in the same run."""
