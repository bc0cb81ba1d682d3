"""The panel and its files: the data contract (``panel``), its checks (``validation``),
months (``months``), reading inputs safely (``files``), writing outputs safely
(``outputs``), transactions to a panel (``transactions``) and the synthetic bank
(``synthetic``)."""
