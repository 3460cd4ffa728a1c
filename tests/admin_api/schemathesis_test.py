"""Schemathesis against a live im-server (tests/admin_api/README.md): starts the server, runs
`schemathesis run` on docs/openapi/admin-api.yaml with the settings of schemathesis.toml and the
hooks of schemathesis_hooks.py, then stops the server, which must exit 0. Fails when Schemathesis
reports anything: a 5xx, a status or a body the spec does not allow, invalid data accepted, valid
data refused, the key not enforced, a wrong answer to an undeclared method.

Usage: run-python.sh schemathesis_test.py --im-server PATH [SCHEMATHESIS RUN OPTIONS...]
(options such as --max-examples 5 or --include-operation-id createGroup override the file's).
"""

import argparse
import os
import pathlib
import subprocess
import sys

from api_spec import SPEC_PATH
from im_server import ImServer, ServerFailure, dies_with_this_process

HERE = pathlib.Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
HOOKS = HERE / "schemathesis_hooks.py"
SCHEMATHESIS = pathlib.Path(sys.executable).parent / "schemathesis"


def run_schemathesis(server, extra_args):
    env = {**os.environ, "IM_ADMIN_API_KEY": server.admin_key, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    argv = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run", str(SPEC_PATH),
            "--url", server.base_url, *extra_args]
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, env=env, preexec_fn=dies_with_this_process()).returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--im-server", required=True, help="the im-server binary to test")
    args, extra_args = parser.parse_known_args()
    try:
        with ImServer(args.im_server) as server:
            status = run_schemathesis(server, extra_args)
    except ServerFailure as failure:
        print(f"schemathesis_test: {failure}", file=sys.stderr)
        return 1
    if status != 0:
        print(f"schemathesis_test: schemathesis reported failures (exit status {status}; the "
              "report above has a curl command to repeat each)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
