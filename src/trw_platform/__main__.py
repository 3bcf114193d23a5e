from trw_platform.cli import app

app()
