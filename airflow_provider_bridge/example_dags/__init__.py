"""
The example DAGs, shipped with the provider: ``bash scripts/demo.sh`` runs each of them twice
against the local sandbox, and the docs pages show them. Copy one into your DAGs folder to start;
each names its connections (``<vendor>_default``) and what it needs at the top.
"""
