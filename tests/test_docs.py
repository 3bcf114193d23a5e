"""The README documents every setting the server reads."""

from pathlib import Path

from trw_platform.core.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_setting() -> None:
    text = README.read_text()

    missing = [
        name for name in Settings.model_fields if f"`TRW_SERVER_{name}`" not in text
    ]

    assert missing == []


def test_public_url_names_machine_for_wildcard_host() -> None:
    wildcard = Settings(HOST="0.0.0.0", PORT=9000)
    ipv6 = Settings(HOST="::1", PORT=9000)
    explicit = Settings(HOST="0.0.0.0", PUBLIC_URL="https://trw.example.org/")

    assert not wildcard.public_url.startswith("http://0.0.0.0")
    assert wildcard.public_url.endswith(":9000")
    assert ipv6.public_url == "http://[::1]:9000"
    assert explicit.public_url == "https://trw.example.org"
