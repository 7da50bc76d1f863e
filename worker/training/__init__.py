"""The one training recipe every task's run goes through (``recipe.train``)."""
