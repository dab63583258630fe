"""Turning sources (folders, git URLs, installed packages) into files, and files into chunks."""
