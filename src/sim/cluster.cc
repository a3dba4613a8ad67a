// placeholder, replaced next
