"""Development tooling (tests, `make synth` summary, benchmarks). Never deployed."""
