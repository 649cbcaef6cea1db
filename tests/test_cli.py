import pytest

from unblur import __version__
from unblur.cli import build_parser, main

SUBCOMMANDS = ("sharpen", "train", "eval", "synth", "demo", "bench", "export")


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"unblur {__version__}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_real_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: unblur {command}" in text
    assert len(text.splitlines()) > 5


@pytest.mark.parametrize("command", ("sharpen", "train", "eval", "demo", "bench"))
def test_computing_commands_take_a_device(command):
    action = next(a for a in build_parser()._subparsers._group_actions[0].choices[command]._actions
                  if "--device" in a.option_strings)
    assert tuple(action.choices) == ("auto", "cpu", "cuda", "mps")


def test_train_switches_reach_the_config():
    """Each on/off training flag sets its config field, and only when given (the defaults stay off)."""
    from unblur.cli import train_config_from_args

    flags = {"--fp32": "fp32", "--cosine": "cosine", "--cache": "cache", "--shuffle-colors": "shuffle_colors",
             "--mix-colors": "mix_colors"}
    assert not any(getattr(train_config_from_args(build_parser().parse_args(["train"])), f) for f in flags.values())
    for flag, field in flags.items():
        cfg = train_config_from_args(build_parser().parse_args(["train", flag]))
        assert {f for f in flags.values() if getattr(cfg, f)} == {field}


def test_bad_values_are_rejected_with_a_message(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "x", "--lr", "-1"])
    assert "expected a number > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "a.jpg", "--out", "o", "--size", "big"])
    assert "expected HxW" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "missing"), "--weights", str(tmp_path / "w.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unblur: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
