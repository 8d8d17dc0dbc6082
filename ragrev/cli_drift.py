"""The ``state`` and ``drift`` commands (see :mod:`ragrev.state`, :mod:`ragrev.drift`).

Kept apart from :mod:`ragrev.cli` and added to its group by :func:`register`.
"""
from __future__ import annotations

import click


def register(cli, _config, _echo_json, json_option, store_option) -> None:
    @cli.command("state")
    @click.argument("rev", required=False, default=None)
    @store_option
    @json_option
    @click.pass_context
    def state_cmd(ctx, rev, stores, as_json):
        """Print the state REV (default: head) implies, per store; touches no store."""
        from ragrev import state as st

        states = st.implied_state(_config(ctx), rev, stores or None)
        if as_json:
            _echo_json({"target": rev or "heads", "stores": [s.as_json() for s in states.values()]})
        else:
            click.echo(st.to_text(states), nl=False)

    @cli.command("drift")
    @store_option
    @json_option
    @click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown (a table per store).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default=None,
                  help="Output format (same as --json / --markdown).")
    @click.option("--count-tolerance", type=float, default=0.5, show_default=True, metavar="RATIO",
                  help="A count is drift when it differs from the last recorded one by more than this ratio.")
    @click.option("--record-counts", is_flag=True,
                  help="Record the counts read now in each store, as the baseline of later runs.")
    @click.pass_context
    def drift_cmd(ctx, stores, as_json, as_markdown, fmt, count_tolerance, record_counts):
        """Compare each live store with the state its version implies (exit 4 on drift)."""
        from ragrev import drift as dr
        from ragrev.errors import BadInput

        if count_tolerance < 0:
            raise BadInput("--count-tolerance must be a ratio >= 0")
        fmt = fmt or ("json" if as_json else "markdown" if as_markdown else "text")
        reports = dr.drift(_config(ctx), stores or None, count_tolerance, record_counts)
        if fmt == "json":
            _echo_json(dr.to_json(reports))
        elif fmt == "markdown":
            click.echo(dr.to_markdown(reports), nl=False)
        else:
            click.echo(dr.to_text(reports), nl=False)
        if dr.has_drift(reports):
            ctx.exit(4)
