"""Review kit: real vs synthetic comparison, blinded reading studies, scoring."""
