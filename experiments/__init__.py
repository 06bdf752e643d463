"""The paper's experiments: each module has an `Options` dataclass and `run(cfg) -> dict`."""
