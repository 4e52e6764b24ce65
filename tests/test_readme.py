"""README's two opening commands are the ones users and CI run."""
import re
from pathlib import Path

from typer.testing import CliRunner

from ganivid.cli import app

ROOT = Path(__file__).resolve().parents[1]
# The clip the README's first command edits: made by samples/make_samples.py from matplotlib's
# public-domain Grace Hopper portrait, a neutral face, so a smile edit shows.
MAIN_SAMPLE = "samples/hopper.mp4"


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_two_commands():
    install, tests = readme_commands()[:2]
    assert install.startswith(f"pip install -e . && ganivid animate {MAIN_SAMPLE} ")
    assert "--au-curve samples/" in install
    assert tests.startswith("pip install -e '.[test]'") and "pytest" in tests


def test_first_command_files_are_shipped():
    install = readme_commands()[0]
    for name in re.findall(r"samples/\S+", install):
        assert (ROOT / name).is_file(), name


def test_main_sample_is_a_short_clip_with_audio():
    """The main sample: 4.8 s (the sample curves end within it), 640x360, 25 fps, AAC audio, < 1 MB."""
    import av

    path = ROOT / MAIN_SAMPLE
    assert path.stat().st_size < 1_000_000
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, v.height, v.average_rate) == ("h264", 640, 360, 25)
        assert a.codec_context.name == "aac"
        assert sum(1 for _ in c.decode(video=0)) == 120


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ganivid" in result.output or "Usage" in result.output
