"""One sample: the request and reply, the zygote and the forked worker, the workload it runs."""
