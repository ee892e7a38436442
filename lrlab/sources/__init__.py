"""The course's sources as published: the code of d2l's "Learning Rate Scheduling" section
(:mod:`lrlab.sources.d2l_section`) and of the three tutorials (:mod:`lrlab.sources.tutorials`), kept as
they were printed (their errors included) so that the course can run them and show what they do.

Nothing in the library imports them.
"""
