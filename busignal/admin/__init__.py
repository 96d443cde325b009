"""Operator data APIs: dead letters and inspection, no printing, no argparse."""
