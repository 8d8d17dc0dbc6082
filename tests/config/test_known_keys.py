"""Every ``[ragrev]`` setting the documentation names is accepted by the
config loader (which refuses unknown keys), and reaches ``Config.options``."""
from __future__ import annotations

from ragrev.config import load_config


def test_documented_ragrev_settings_are_accepted(tmp_path):
    (tmp_path / "revisions").mkdir()
    path = tmp_path / "ragrev.toml"
    path.write_text(
        '[ragrev]\nscript_location = "revisions"\nexecutor = "local:2"\nbulk_staging = "/tmp/stage"\n'
        'embed_texts_per_second = 50\nembed_tokens_per_minute = 90000\nmodels = "ragrev_models.py"\n\n'
        f'[stores.meta]\nurl = "sqlite:///{tmp_path}/meta.db"\n'
    )
    config = load_config(path)
    assert config.options["executor"] == "local:2"
    assert config.options["bulk_staging"] == "/tmp/stage"
    assert config.options["embed_texts_per_second"] == 50
    assert config.options["embed_tokens_per_minute"] == 90000
