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
# # Exploration: how firm is each rating?
#
# Three questions an analyst asks before committing numbers:
#
# 1. How much must an input move for a rating to change band?
# 2. Which single input flips a module's rating?
# 3. What changed since last year, and is it the method or the platform?
#
# Change `module` to focus the sensitivity section; in JupyterLab the last cell gives sliders
# (`interactive = None` gives them only where a Jupyter front end runs the notebook: executed
# unattended, by nbconvert or papermill, widgets could stall the run).
# This notebook belongs to the internal report only: distances reveal confidential rates.

# %% tags=["parameters"]
year = 2024
module = None
data_dir = None
methodology = None
interactive = None

# %%
# %matplotlib inline
from dsarisk.workbook import open_explore

book = open_explore(year=year, module=module, data_dir=data_dir, methodology=methodology)

# %% [markdown]
# ## 1. Distance to the next band

# %%
book.distances()

# %%
book.distance_chart()

# %% [markdown]
# ## 2. Which inputs flip the rating

# %%
book.tornado()

# %%
book.sensitivity()

# %% [markdown]
# ## 3. Method or platform: what changed since last year

# %%
book.year_comparison()

# %%
book.methodology_comparison()

# %%
book.measure_changes()

# %% [markdown]
# ## What-if (interactive in JupyterLab)

# %% tags=["remove_cell"]
book.whatif(interactive=interactive)
