"""The task tracking domain: closing the rows runs leave open, re-running them, deleting old ones."""
