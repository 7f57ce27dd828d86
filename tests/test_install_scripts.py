"""The install branches of scripts/ensure_tools.sh and scripts/test.sh, run for real on a simulated fresh machine.

Each test runs the real scripts in bash with a PATH built for the test: the machine's own commands minus
the tools under test (chromium, initdb/pg_ctl/postgres, node/npm) and minus apt-get, sudo and id, which
are replaced by recording stand-ins. The stand-in apt-get writes its argv, DEBIAN_FRONTEND and the uid it
runs as to a log, refuses to run unless root (as the real one does), and "installs" a package by creating
its programs where Debian would put them: PostgreSQL's in a versioned bin folder that is not on PATH (the
script finds it through CONSENTGATE_PG_BIN_GLOB, standing in for /usr/lib/postgresql/*/bin), the others on
PATH. The stand-in sudo logs its argv and runs the rest as root; the stand-in id prints the uid the test
chose, so the same tests run as root and as an unprivileged user. For scripts/bootstrap.sh, a stand-in
python3.11 behaves like Debian's without python3.11-venv until apt-get "installs" that package (its
`-m venv` leaves a venv without pip and fails, as the real one does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
BASH = shutil.which("bash") or "/bin/bash"
TOOLS = {
    "java",
    "chromium",
    "chromium-browser",
    "initdb",
    "pg_ctl",
    "postgres",
    "node",
    "nodejs",
    "npm",
    "npx",
}
STANDINS = {"apt-get", "sudo", "id", "python3.11"}
SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
UPDATE = "apt-get update -qq | DEBIAN_FRONTEND=noninteractive uid=0"


def _install(package: str) -> str:
    return f"apt-get install -y -qq {package} | DEBIAN_FRONTEND=noninteractive uid=0"


APT_GET = r"""#!BASH
echo "apt-get $* | DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset} uid=$FAKE_UID" >>"$CALLS"
if [ "$FAKE_UID" != 0 ]; then
  echo "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)" >&2; exit 100
fi
[ "$1" = install ] || exit 0
for pkg in "$@"; do
  case "$pkg" in install|-*) continue ;; esac
  case " ${APT_UNKNOWN:-} " in *" $pkg "*) echo "E: Unable to locate package $pkg" >&2; exit 100 ;; esac
  [ -n "${APT_INSTALLS_NOTHING:-}" ] && continue
  case "$pkg" in
    postgresql) mkdir -p "$PG_ROOT/15/bin"; for b in initdb pg_ctl postgres; do cp "$PROGRAM" "$PG_ROOT/15/bin/$b"; done ;;
    python3.11-venv) touch "$PYTHON_VENV_MODULE" ;;
    chromium) cp "$PROGRAM" "$INSTALLED/chromium" ;;
    openjdk-17-jre-headless) cp "$STANDIN_JAVA17" "$INSTALLED/java" ;;
    nodejs) cp "$PROGRAM" "$INSTALLED/node" ;;
    npm) cp "$STANDIN_NPM" "$INSTALLED/npm" ;;
  esac
done
"""
SUDO = r"""#!BASH
echo "sudo $*" >>"$CALLS"
FAKE_UID=0 exec env "$@"
"""
ID = r"""#!BASH
[ "$1" = -u ] && { echo "$FAKE_UID"; exit 0; }
exit 2
"""
NPM = r"""#!BASH
echo "npm $*" >>"$CALLS"
[ -n "${NPM_FAILS:-}" ] && { echo "npm error 404 Not Found - GET https://registry.npmjs.org/@iabgpp%2fcmpapi" >&2; exit 1; }
while [ $# -gt 0 ]; do [ "$1" = --prefix ] && mkdir -p "$2/node_modules"; shift; done
"""
PYTHON = r"""#!BASH
echo "python3.11 $*" >>"$CALLS"
case "$1 $2" in
  "-c import sys"*) echo "${PYTHON_VERSION:-3.11}" ;;
  "-c import ensurepip"*) [ -e "$PYTHON_VENV_MODULE" ] ;;
  "-m venv")
    dir="${*: -1}"; mkdir -p "$dir/bin"; cp "$VENV_PYTHON" "$dir/bin/python"
    [ -e "$PYTHON_VENV_MODULE" ] || { echo "Error: Command '[...]' returned non-zero exit status 1." >&2; exit 1; } ;;
  *) exit 2 ;;
esac
"""
VENV_PYTHON = r"""#!BASH
[ -e "$PYTHON_VENV_MODULE" ] || { echo "$0: No module named pip" >&2; exit 1; }
[ "$*" = "-m pip --version" ] && exit 0
echo "venv/python $*" >>"$CALLS"
[ -z "${PIP_FAILS:-}" ] || { echo "ERROR: No matching distribution found for apache-airflow" >&2; exit 1; }
"""
PROGRAM = "#!BASH\nexit 0\n"
JAVA17 = "#!BASH\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n"
JAVA8 = "#!BASH\necho 'openjdk version \"1.8.0_402\"' >&2\n"
PYTEST = '#!BASH\necho "pytest $*" >>"$CALLS"\n'


@dataclass
class Result:
    returncode: int
    stderr: str
    calls: list[str]


class Machine:
    """A simulated machine: the system's commands without the tools, stand-ins, and a log of their calls."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.system, self.standins, self.installed = tmp / "system", tmp / "standins", tmp / "installed"
        self.pg_root, self.calls = tmp / "postgresql", tmp / "calls.log"
        for d in (self.system, self.standins, self.installed, self.pg_root):
            d.mkdir()
        self._link_system_commands()
        for name, text in {"apt-get": APT_GET, "sudo": SUDO, "id": ID, "python3.11": PYTHON}.items():
            self.write(self.standins / name, text)
        for name, text in {
            "npm": NPM,
            "program": PROGRAM,
            "venv-python": VENV_PYTHON,
            "java17": JAVA17,
            "java8": JAVA8,
        }.items():
            self.write(tmp / name, text)
        self.env: dict[str, str] = {}

    def _link_system_commands(self) -> None:
        for d in SYSTEM_DIRS:
            if not os.path.isdir(d):
                continue
            for entry in os.scandir(d):
                target = self.system / entry.name
                if entry.name not in TOOLS | STANDINS and not target.exists() and not target.is_symlink():
                    target.symlink_to(entry.path)

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.write_text(text.replace("#!BASH", f"#!{BASH}"))
        path.chmod(0o755)

    def has(self, *tools: str) -> None:
        """Put tools on the machine before the run, as if they were installed already."""
        for tool in tools:
            if tool in {"initdb", "pg_ctl", "postgres"}:
                (self.pg_root / "15" / "bin").mkdir(parents=True, exist_ok=True)
                shutil.copy(self.tmp / "program", self.pg_root / "15" / "bin" / tool)
            else:
                standin = {"npm": "npm", "java": "java17", "java8": "java8"}.get(tool, "program")
                shutil.copy(self.tmp / standin, self.installed / ("java" if tool == "java8" else tool))

    def without_sudo(self) -> None:
        (self.standins / "sudo").unlink()

    def run(self, script: str, uid: int = 0, cwd: Path | None = None) -> Result:
        """Run bash SCRIPT (as scripts/test.sh runs: set -euo pipefail) on this machine, as user UID."""
        env = {
            "PATH": f"{self.standins}:{self.installed}:{self.system}",
            "HOME": str(self.tmp),
            "CALLS": str(self.calls),
            "PG_ROOT": str(self.pg_root),
            "INSTALLED": str(self.installed),
            "PROGRAM": str(self.tmp / "program"),
            "STANDIN_NPM": str(self.tmp / "npm"),
            "STANDIN_JAVA17": str(self.tmp / "java17"),
            "VENV_PYTHON": str(self.tmp / "venv-python"),
            "PYTHON_VENV_MODULE": str(self.tmp / "python-venv-module-installed"),
            "CONSENTGATE_PG_BIN_GLOB": f"{self.pg_root}/*/bin",
            **self.env,
            "FAKE_UID": str(uid),
        }
        p = subprocess.run(
            [BASH, "-c", f"set -euo pipefail\n{script}"],
            env=env,
            cwd=cwd or self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = self.calls.read_text().splitlines() if self.calls.exists() else []
        return Result(p.returncode, p.stderr, calls)

    def ensure(self, function: str, *args: str, uid: int = 0) -> Result:
        """Source ensure_tools.sh (as scripts/test.sh does) and call one of its functions."""
        quoted = " ".join(f"'{a}'" for a in args)
        return self.run(f'source "{SCRIPTS}/ensure_tools.sh"\n{function} {quoted}', uid=uid)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines, "expected an error message on stderr"
    return lines[-1]


# -- the tool is missing: what would be installed, and how -------------------------------------------


@pytest.mark.parametrize(
    ("function", "packages"),
    [
        ("cg_ensure_chromium", "chromium"),
        ("cg_ensure_postgres", "postgresql"),
        ("cg_ensure_node", "nodejs npm"),
        ("cg_ensure_java", "openjdk-17-jre-headless"),
    ],
)
def test_as_root_a_missing_tool_is_installed_with_apt_get_without_sudo(
    machine: Machine, function: str, packages: str
) -> None:
    result = machine.ensure(function)

    assert result.returncode == 0, result.stderr
    assert result.calls == [UPDATE, _install(packages)]


def test_as_root_the_installed_postgresql_binaries_are_found_in_their_versioned_folder(
    machine: Machine,
) -> None:
    result = machine.run(
        f'source "{SCRIPTS}/ensure_tools.sh"\ncg_ensure_postgres\ncommand -v initdb pg_ctl postgres >&2'
    )

    assert result.returncode == 0, result.stderr
    bin_dir = machine.pg_root / "15" / "bin"
    assert result.stderr.splitlines()[-3:] == [str(bin_dir / b) for b in ("initdb", "pg_ctl", "postgres")]


def test_of_several_postgresql_versions_the_highest_comes_first_on_path(machine: Machine) -> None:
    for version in ("9.6", "13", "15"):
        (machine.pg_root / version / "bin").mkdir(parents=True)
        for b in ("initdb", "pg_ctl", "postgres"):
            shutil.copy(machine.tmp / "program", machine.pg_root / version / "bin" / b)

    result = machine.run(f'source "{SCRIPTS}/ensure_tools.sh"\ncg_ensure_postgres\ncommand -v initdb >&2')

    assert (result.returncode, result.calls) == (0, [])
    assert result.stderr.strip() == str(machine.pg_root / "15" / "bin" / "initdb")


def test_as_a_user_the_install_runs_through_sudo_env(machine: Machine) -> None:
    result = machine.ensure("cg_ensure_chromium", uid=1000)

    assert result.returncode == 0, result.stderr
    assert result.calls == [
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        UPDATE,
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        _install("chromium"),
    ]


def test_several_missing_tools_share_one_apt_get_update(machine: Machine) -> None:
    result = machine.run(f'source "{SCRIPTS}/ensure_tools.sh"\ncg_ensure_postgres\ncg_ensure_chromium')

    assert result.returncode == 0, result.stderr
    assert result.calls == [UPDATE, _install("postgresql"), _install("chromium")]


# -- the tool is present: nothing is installed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "tools"),
    [
        ("cg_ensure_chromium", ["chromium"]),
        ("cg_ensure_postgres", ["initdb", "pg_ctl", "postgres"]),
        ("cg_ensure_node", ["node", "npm"]),
        ("cg_ensure_java", ["java"]),
    ],
)
def test_a_present_tool_is_not_installed_again(machine: Machine, function: str, tools: list[str]) -> None:
    machine.has(*tools)

    result = machine.ensure(function, uid=1000)

    assert (result.returncode, result.calls, result.stderr) == (0, [], "")


def test_postgresql_with_only_some_server_binaries_is_installed(machine: Machine) -> None:
    machine.has("initdb")

    result = machine.ensure("cg_ensure_postgres")

    assert result.returncode == 0, result.stderr
    assert result.calls == [UPDATE, _install("postgresql")]


# -- the install fails: one line that says what and why, and a non-zero exit ---------------------------------


def test_a_failed_install_stops_with_one_line_naming_the_command_and_apt_gets_reason(
    machine: Machine,
) -> None:
    machine.env["APT_UNKNOWN"] = "chromium"

    result = machine.ensure("cg_ensure_chromium")

    assert result.returncode == 1
    assert _error_line(result) == (
        "consentgate: could not install chromium (headless browser for the report's browser test): "
        "'apt-get install -y -qq chromium' failed (exit 100: E: Unable to locate package chromium); "
        "install it yourself and re-run"
    )


def test_an_install_that_leaves_the_tool_missing_stops_with_one_line(machine: Machine) -> None:
    machine.env["APT_INSTALLS_NOTHING"] = "1"

    result = machine.ensure("cg_ensure_postgres")

    assert result.returncode == 1
    assert result.calls == [UPDATE, _install("postgresql")]
    assert _error_line(result) == (
        "consentgate: PostgreSQL server binaries (initdb, pg_ctl, postgres) still missing after "
        f"'apt-get install postgresql': not on PATH nor in {machine.pg_root}/*/bin"
    )


def test_not_root_and_no_sudo_stops_with_one_line_before_any_apt_get(machine: Machine) -> None:
    machine.without_sudo()

    result = machine.ensure("cg_ensure_chromium", uid=1000)

    assert result.returncode == 1
    assert result.calls == []
    assert result.stderr.strip() == (
        "consentgate: chromium (headless browser for the report's browser test) is missing and installing it "
        "needs root: not root (uid 1000) and no sudo; run as root or install Debian package(s) 'chromium' yourself"
    )


# -- the Node reference project: npm ci when its lockfile is new or changed ------------------------------------


def _node_project(tmp: Path, lock: str = '{"lockfileVersion": 3}') -> Path:
    project = tmp / "reference"
    project.mkdir(exist_ok=True)
    (project / "package.json").write_text('{"private": true}')
    (project / "package-lock.json").write_text(lock)
    return project


def test_a_node_project_without_node_installs_node_then_runs_npm_ci(machine: Machine) -> None:
    project = _node_project(machine.tmp)

    result = machine.ensure("cg_ensure_node_reference", str(project))

    assert result.returncode == 0, result.stderr
    assert result.calls == [UPDATE, _install("nodejs npm"), f"npm ci --prefix {project} --no-audit --no-fund"]


def test_npm_ci_runs_again_only_when_the_lockfile_changes(machine: Machine) -> None:
    machine.has("node", "npm")
    project = _node_project(machine.tmp)
    npm_ci = f"npm ci --prefix {project} --no-audit --no-fund"

    assert machine.ensure("cg_ensure_node_reference", str(project)).calls == [npm_ci]
    assert machine.ensure("cg_ensure_node_reference", str(project)).calls == [npm_ci]
    _node_project(machine.tmp, lock='{"lockfileVersion": 3, "packages": {}}')
    assert machine.ensure("cg_ensure_node_reference", str(project)).calls == [npm_ci, npm_ci]


def test_a_failed_npm_ci_stops_with_one_line_and_is_retried_next_time(machine: Machine) -> None:
    machine.has("node", "npm")
    project = _node_project(machine.tmp)
    machine.env["NPM_FAILS"] = "1"

    result = machine.ensure("cg_ensure_node_reference", str(project))

    assert result.returncode == 1
    assert _error_line(result) == (
        f"consentgate: could not install the Node reference packages: 'npm ci --prefix {project}' failed "
        "(exit 1: npm error 404 Not Found - GET https://registry.npmjs.org/@iabgpp%2fcmpapi); "
        f"fix {project}/package-lock.json or the npm registry access and re-run"
    )
    del machine.env["NPM_FAILS"]
    assert machine.ensure("cg_ensure_node_reference", str(project)).returncode == 0
    assert len(machine.calls.read_text().splitlines()) == 2


def test_no_node_project_needs_neither_node_nor_npm(machine: Machine) -> None:
    result = machine.ensure("cg_ensure_node_reference", str(machine.tmp / "absent"))

    assert (result.returncode, result.calls) == (0, [])


# -- the README's test command on a fresh machine ------------------------------------------------------------


def _checkout(tmp: Path, test_sh: str | None = None) -> Path:
    """A copy of the repository's scripts with a ready .venv whose pytest is a recording stand-in."""
    root = tmp / "checkout"
    (root / "scripts").mkdir(parents=True)
    for name in ("test.sh", "bootstrap.sh", "ensure_tools.sh"):
        shutil.copy(SCRIPTS / name, root / "scripts" / name)
    if test_sh is not None:
        (root / "scripts" / "test.sh").write_text(test_sh)
    (root / "pyproject.toml").write_text("[project]\nname = 'checkout'\n")
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    Machine.write(venv_bin / "python", PROGRAM)
    Machine.write(venv_bin / "pytest", PYTEST)
    stamp = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    (root / ".venv" / ".consentgate-installed").write_text(stamp + "\n")
    (root / "tests" / "signals").mkdir(parents=True)
    _node_project(root / "tests" / "signals")
    return root


@pytest.mark.parametrize("uid", [0, 1000])
def test_scripts_test_sh_on_a_fresh_machine_installs_every_tool_then_runs_pytest(
    machine: Machine, uid: int
) -> None:
    root = _checkout(machine.tmp)

    result = machine.run("exec ./scripts/test.sh -q -x", uid=uid, cwd=root)

    assert result.returncode == 0, result.stderr
    apt = [c for c in result.calls if c.startswith("apt-get")]
    assert apt == [
        UPDATE,
        _install("postgresql"),
        _install("chromium"),
        _install("openjdk-17-jre-headless"),
        _install("nodejs npm"),
    ]
    assert result.calls[-2:] == [
        f"npm ci --prefix {root}/tests/signals/reference --no-audit --no-fund",
        "pytest -n 2 -q -x",  # two xdist workers
    ]


def test_scripts_test_sh_with_every_tool_present_installs_nothing(machine: Machine) -> None:
    machine.has("initdb", "pg_ctl", "postgres", "chromium", "java", "node", "npm")
    root = _checkout(machine.tmp)
    machine.ensure("cg_ensure_node_reference", str(root / "tests" / "signals" / "reference"))
    machine.calls.unlink()

    result = machine.run("exec ./scripts/test.sh tests/test_docs.py", uid=1000, cwd=root)

    assert (result.returncode, result.calls, result.stderr) == (0, ["pytest -n 2 tests/test_docs.py"], "")


# -- scripts/bootstrap.sh: the venv on a fresh machine ----------------------------------------------------------


def _bootstrap_checkout(tmp: Path) -> Path:
    root = tmp / "checkout"
    (root / "scripts").mkdir(parents=True)
    for name in ("bootstrap.sh", "ensure_tools.sh"):
        shutil.copy(SCRIPTS / name, root / "scripts" / name)
    (root / "pyproject.toml").write_text("[project]\nname = 'checkout'\n")
    return root


def test_bootstrap_on_a_python_without_venv_installs_its_venv_package_then_the_project(
    machine: Machine,
) -> None:
    root = _bootstrap_checkout(machine.tmp)

    result = machine.run("./scripts/bootstrap.sh", cwd=root)

    assert result.returncode == 0, result.stderr
    assert [c for c in result.calls if not c.startswith("python3.11 -c")] == [
        UPDATE,
        _install("python3.11-venv"),
        f"python3.11 -m venv --clear {root}/.venv",
        "venv/python -m pip install --quiet --upgrade pip",
        f"venv/python -m pip install --quiet -e {root}[dev]",
    ]
    assert (root / ".venv" / ".consentgate-installed").read_text().strip() == hashlib.sha256(
        (root / "pyproject.toml").read_bytes()
    ).hexdigest()


def test_bootstrap_again_installs_nothing_until_pyproject_changes(machine: Machine) -> None:
    root = _bootstrap_checkout(machine.tmp)
    assert machine.run("./scripts/bootstrap.sh", cwd=root).returncode == 0
    machine.calls.unlink()

    assert machine.run("./scripts/bootstrap.sh", cwd=root).calls == []
    (root / "pyproject.toml").write_text("[project]\nname = 'checkout'\nversion = '2'\n")
    assert machine.run("./scripts/bootstrap.sh", cwd=root).calls == [
        f"venv/python -m pip install --quiet -e {root}[dev]"
    ]


def test_bootstrap_after_a_failed_venv_creation_creates_it_again(machine: Machine) -> None:
    root = _bootstrap_checkout(machine.tmp)
    machine.env["APT_INSTALLS_NOTHING"] = "1"
    failed = machine.run("./scripts/bootstrap.sh", cwd=root)
    assert failed.returncode == 1
    assert _error_line(failed) == (
        "consentgate: 'python3.11' still cannot create a venv (no ensurepip) after "
        "'apt-get install python3.11-venv'; set PYTHON to another python3.11"
    )
    (root / ".venv" / "bin").mkdir(parents=True)
    # what a failed `python -m venv` leaves behind: a python, but no pip
    shutil.copy(machine.tmp / "venv-python", root / ".venv" / "bin" / "python")
    del machine.env["APT_INSTALLS_NOTHING"]

    result = machine.run("./scripts/bootstrap.sh", cwd=root)

    assert result.returncode == 0, result.stderr
    assert f"python3.11 -m venv --clear {root}/.venv" in result.calls


def test_bootstrap_with_an_old_python_stops_with_one_line(machine: Machine) -> None:
    root = _bootstrap_checkout(machine.tmp)
    machine.env["PYTHON_VERSION"] = "3.9"

    result = machine.run("./scripts/bootstrap.sh", cwd=root)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "consentgate: Python >= 3.11 needed, 'python3.11' is Python 3.9: "
        "install python3.11 or set PYTHON=/path/to/python3.11"
    )
    assert not (root / ".venv").exists()


def test_bootstrap_whose_pip_install_fails_keeps_no_stamp_and_retries(machine: Machine) -> None:
    root = _bootstrap_checkout(machine.tmp)
    machine.env["PIP_FAILS"] = "1"

    assert machine.run("./scripts/bootstrap.sh", cwd=root).returncode == 1
    assert not (root / ".venv" / ".consentgate-installed").exists()
    del machine.env["PIP_FAILS"]
    machine.calls.unlink()

    assert machine.run("./scripts/bootstrap.sh", cwd=root).calls == [
        f"venv/python -m pip install --quiet -e {root}[dev]"
    ]


def test_a_java_older_than_17_is_replaced_by_java_17(machine: Machine) -> None:
    machine.has("java8")  # `java -version` says 1.8.0_402

    result = machine.ensure("cg_ensure_java")

    assert result.returncode == 0, result.stderr
    assert result.calls == [UPDATE, _install("openjdk-17-jre-headless")]


def test_a_java_that_stays_too_old_stops_with_one_line(machine: Machine) -> None:
    machine.has("java8")
    machine.env["APT_INSTALLS_NOTHING"] = "1"

    result = machine.ensure("cg_ensure_java")

    assert result.returncode == 1
    assert _error_line(result) == (
        "consentgate: a Java 17 runtime (for the test suite's Spark cluster) still missing after "
        "'apt-get install openjdk-17-jre-headless': java on PATH is version 8"
    )
