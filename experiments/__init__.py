"""The paper's experiments, installed as `saematch_experiments` (a name no other package has).

Every module directly in this folder is one experiment, paired with
`conf/experiment/<name>.yaml` (its options' defaults): a dataclass `Options` and
`run(opts, ctx) -> Results`. No experiment imports another.

    harness/   the skeleton every experiment runs in: the `saematch` command (cli), the config
               schema and location, the Context that builds library objects, the registry,
               preflight checks, recording
    support/   helpers some experiments share that need the Context (what needs no Context
               lives in the library, saematch/)
"""
