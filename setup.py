"""Which packages the wheel holds (the project's metadata is in pyproject.toml).

    saematch              the library (saematch/)
    saematch_experiments  the experiments and the `saematch` command (experiments/)
    saematch_conf         the Hydra configs (conf/), read through pkg://saematch_conf

Installed names that cannot collide with another project's `experiments` or `conf`; the
folders keep their short names in the checkout. Subpackages are found, not listed.
"""

from setuptools import find_namespace_packages, find_packages, setup

CODE = {"saematch_experiments": "experiments"}
CONFIGS = {"saematch_conf": "conf"}  # its group folders are packages of YAML files only


def packages() -> list[str]:
    """saematch and its subpackages, the experiments and theirs, the configs and their groups."""
    found = find_packages(include=["saematch", "saematch.*"])
    for name, folder in CODE.items():
        found += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]
    for name, folder in CONFIGS.items():
        groups = find_namespace_packages(folder, exclude=["*__pycache__*"])
        found += [name, *(f"{name}.{sub}" for sub in groups)]
    return found


PACKAGES = packages()
setup(
    packages=PACKAGES,
    package_dir=CODE | CONFIGS,
    package_data={
        "saematch.explorer": ["assets/*"],
        **{p: ["*.yaml"] for p in PACKAGES if p.split(".")[0] in CONFIGS},
    },
)
