"""hubd: JupyterHub at home, run and looked after on Docker."""

__version__ = "0.1.0"
