"""recsel.atomic: outputs appear whole or not at all, and never replace an input."""

import os

import pytest
import tensorflow as tf

from recsel import atomic


def test_overwrite_never_deletes_an_input_or_the_current_directory(tmp_path, monkeypatch):
    # `recsel select sub/d.csv --output-dir sub --overwrite` deleted d.csv with sub; and
    # `--output-dir . --overwrite` failed with a raw "Device or resource busy".
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "d.csv").write_text("x,y\n1,0\n")
    for given in (str(sub / "d.csv"), str(sub / "*.csv"), str(sub)):
        with pytest.raises(FileExistsError, match=r"holds the input .*--overwrite would delete"):
            atomic.check_output_dir(str(sub), overwrite=True, inputs=[None, given])
    atomic.check_output_dir(str(sub), overwrite=True, inputs=[str(tmp_path / "elsewhere.csv")])
    monkeypatch.chdir(sub)
    for output in (".", str(tmp_path)):
        with pytest.raises(FileExistsError, match="is the current directory or holds it"):
            atomic.check_output_dir(output, overwrite=True)
    assert (sub / "d.csv").exists()


def test_a_failed_publish_keeps_the_old_outputs_and_leaves_no_staging(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "selection.json").write_text("old")
    rename = tf.io.gfile.rename

    def fail_into_place(src, dst, overwrite=False):
        if ".staging-" in str(src):
            raise OSError("rename failed")
        return rename(src, dst, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", fail_into_place)
    with pytest.raises(OSError, match="rename failed"):
        with atomic.atomic_output_dir(str(out), overwrite=True) as staging:
            (tmp_path / os.path.basename(staging) / "selection.json").write_text("new")
    assert (out / "selection.json").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or backup left
