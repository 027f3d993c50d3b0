"""Where frames come from and go to: sources (cameras, streams, files, the synthetic world), recording clips, annotated video."""
