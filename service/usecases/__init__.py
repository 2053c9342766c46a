"""What the API, the alerts and the monthly report ask: the query kernel (`kernel`) and one
module per use case (`balance`, `energy`, `carbon`, `waste`, `targets`).
"""
