"""Infrastructure: settings and persistence wiring, chosen by one URL."""
