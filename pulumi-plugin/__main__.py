"""Entry point of the plugin folder: the same server as the ``pulumi-resource-virtplane`` console script."""

from virtplane.plugin.__main__ import main

main()
