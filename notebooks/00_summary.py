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
# # Systemic risk assessment: summary
#
# The risk modules side by side: the ratings, where each module sits on the inherent and
# residual matrices, what changed since last year and why, and any data quality findings.

# %% tags=["parameters"]
year = 2024
data_dir = None
methodology = None
public = False

# %%
# %matplotlib inline
from dsarisk.workbook import open_summary

summary = open_summary(year=year, data_dir=data_dir, methodology=methodology, public=public)
summary.header()

# %% [markdown]
# ## Ratings

# %%
display(summary.executive_table(), summary.findings())

# %% [markdown]
# ## All modules on the inherent and residual matrices

# %%
summary.legend()

# %%
summary.inherent_heatmap()

# %%
summary.residual_heatmap()

# %% [markdown]
# ## Year over year

# %%
summary.year_over_year()

# %% [markdown]
# ## Since last year: commitments and changes

# %%
display(summary.commitments(), summary.changes())

# %% [markdown]
# ## Methodology notes

# %%
summary.methodology_notes()
