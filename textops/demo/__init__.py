"""``make demo``: the whole loop on one machine, on embedded defaults.

``scenario`` (pure) decides what data and traffic each stage uses, ``service`` runs the real
BentoML service as a child process, ``client`` talks to it over HTTP, ``report`` writes the
plots and the HTML report, and ``loop`` runs the stages in order with visible progress.

Nothing is imported here: the command line reads ``DemoSize`` without loading MLflow.
"""
