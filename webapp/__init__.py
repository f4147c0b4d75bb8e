"""The web app's services (what the Gradio events call)."""
