"""``loadbench bisect``: which release of a package, or which commit of a repository, changed a metric.

``inputs`` checks what a bisect is asked for, ``candidates`` lists what is walked (a
registry's releases, a repository's commits), ``wheels`` turns a commit into something an
environment can install, ``search`` decides each step from its paired comparisons, and
``driver`` measures the steps and keeps them on disk, so an interrupted bisect continues
where it stopped.
"""
