"""Fine-tuning and evaluation on a story's own dialogue.

``dataset`` turns ``dialogue.jsonl`` (and playthrough transcripts) into examples rendered with
exactly the runtime's prompt; ``trainer`` runs LoRA or full fine-tuning; ``evaluate`` measures
base vs fine-tuned on the held-out split; ``report`` draws the results.
"""
