# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Moderation decisions from the DSA Transparency Database
#
# Every platform sends the EU a statement of reasons for each moderation decision. Counted per
# risk module, they give public, comparable proxies: how much a platform actions, how much it
# finds on its own initiative, how much machines decide. Point `sor_path` at a folder of daily
# dumps (CSV, zipped, nested zips or Parquet); the default is the small synthetic sample.

# %% tags=["parameters"]
sor_path = None
platform = "Sample Marketplace"
module = None
engine = "duckdb"

# %%
# %matplotlib inline
from dsarisk.workbook import open_sor

book = open_sor(path=sor_path, platform=platform, engine=engine)
book.provenance()

# %% [markdown]
# ## One platform, per risk module

# %%
book.profile()

# %%
book.trend()

# %% [markdown]
# ## Platforms side by side

# %%
book.platforms(module)
