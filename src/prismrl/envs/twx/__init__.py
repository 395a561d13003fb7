"""TextWorld-Express: fast procedural text games (cookingworld, twc, coin, ...) with gold paths."""
