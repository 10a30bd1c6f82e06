"""Engines that score an archive elsewhere than in this process (imported only when used)."""
