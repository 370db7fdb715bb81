# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["remove_cell"]
# **For analysts** (this note is left out of the report): every number below is computed by the
# `dsarisk` library from the year's input files; the notebook only lays the sections out. Run it
# for another year or module by changing the parameters. The five module notebooks are written
# from `notebooks/module_template.py` by `make notebooks`: edit the template, not the copies.

# %% tags=["parameters"]
year = 2024
module = "prohibited-controlled-products"
data_dir = None
methodology = None
public = False
output_dir = None

# %%
# %matplotlib inline
from dsarisk.workbook import open_module

book = open_module(year=year, module=module, data_dir=data_dir, methodology=methodology, public=public)
book.title_block()

# %% [markdown]
# ## Risk definition and registry

# %%
display(book.definition(), book.registry())

# %% [markdown]
# ## Probability
# The rate of the basis proxy is banded by the methodology's probability thresholds.

# %%
display(book.proxies(), book.probability())

# %% [markdown]
# ## Severity
# Scope, scale and remediability, combined as the methodology says.

# %%
book.severity()

# %% [markdown]
# ## Inherent risk

# %%
book.inherent_heatmap()

# %% [markdown]
# ## Mitigation measures

# %%
display(book.questionnaire(), book.effectiveness())

# %%
book.questionnaire_chart()

# %% [markdown]
# ## Residual risk

# %%
book.residual_heatmap()

# %% [markdown]
# ## Computed vs published

# %%
book.published_check()

# %% [markdown]
# ## Year over year

# %%
book.previous_year()

# %% [markdown]
# ## Article 34(2) factors

# %%
book.factors()

# %% [markdown]
# ## Roadmap (Article 35(1))

# %%
book.roadmap()

# %% [markdown]
# ## Last year's commitments and what changed since

# %%
display(book.commitments(), book.changes())

# %% [markdown]
# ## Data quality

# %%
book.findings()

# %% tags=["remove_cell"]
book.save_results(output_dir)
