"""Brazilian identifiers the command, the API and the admin all validate the same way."""

UF_NAMES = {
    "AC": "Acre", "AL": "Alagoas", "AM": "Amazonas", "AP": "Amapá", "BA": "Bahia",
    "CE": "Ceará", "DF": "Distrito Federal", "ES": "Espírito Santo", "GO": "Goiás",
    "MA": "Maranhão", "MG": "Minas Gerais", "MS": "Mato Grosso do Sul", "MT": "Mato Grosso",
    "PA": "Pará", "PB": "Paraíba", "PE": "Pernambuco", "PI": "Piauí", "PR": "Paraná",
    "RJ": "Rio de Janeiro", "RN": "Rio Grande do Norte", "RO": "Rondônia", "RR": "Roraima",
    "RS": "Rio Grande do Sul", "SC": "Santa Catarina", "SE": "Sergipe", "SP": "São Paulo",
    "TO": "Tocantins",
}  # fmt: skip
UFS = frozenset(UF_NAMES)


def cnpj_check_digits_ok(digits: str) -> bool:
    """True for 14 ASCII digits whose two check digits match (módulo 11)."""
    if len(digits) != 14 or not digits.isascii() or not digits.isdigit():
        return False
    numbers = [int(c) for c in digits]
    for size in (12, 13):
        weights = list(range(size - 7, 1, -1)) + list(range(9, 1, -1))
        total = sum(n * w for n, w in zip(numbers[:size], weights, strict=True))
        if numbers[size] != (0 if total % 11 < 2 else 11 - total % 11):
            return False
    return True
