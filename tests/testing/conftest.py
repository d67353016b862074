"""The sample project runs in a pytest session of its own (test_sample_project.py), not in this one."""

collect_ignore = ["sample_project"]
