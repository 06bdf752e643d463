"""saematch's Hydra configs, installed as the package `saematch_conf` (pkg://saematch_conf)."""
