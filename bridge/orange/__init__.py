"""Everything that knows Orange's wire format; nothing outside this package does."""
