"""README's two opening commands are the ones users and CI run."""
import re
from pathlib import Path

from typer.testing import CliRunner

from ganivid.cli import app

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_two_commands():
    install, tests = readme_commands()[:2]
    assert install.startswith("pip install -e . && ganivid animate samples/")
    assert "--au-curve samples/" in install
    assert tests.startswith("pip install -e '.[test]'") and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ganivid" in result.output or "Usage" in result.output
