"""Topic models: LDA (Blei, Ng & Jordan 2003) and ProdLDA (Srivastava & Sutton 2017) on word counts."""
